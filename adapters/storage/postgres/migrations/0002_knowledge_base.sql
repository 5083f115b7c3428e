-- Knowledge base chunks with full-text and vector search.
--
-- The embedding column is an untyped `vector` with its dimension in `dim`, because the
-- dimension follows the configured embedder (384 for the offline hashing embedder, 1536
-- for text-embedding-3-small, ...). HNSW needs a fixed dimension, so the knowledge-base
-- adapter creates one partial expression index per dimension at start-up:
--   CREATE INDEX knowledge_base_embedding_<dim>_idx ON knowledge_base
--     USING hnsw ((embedding::vector(<dim>)) vector_cosine_ops) WHERE dim = <dim>;
-- and queries with the same expression and predicate.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE knowledge_base (
    id            text PRIMARY KEY,  -- document/section-slug/index
    document      text NOT NULL,
    section       text NOT NULL,
    chunk_text    text NOT NULL,
    content_hash  text NOT NULL,
    embedder      text NOT NULL,
    dim           integer NOT NULL CHECK (dim > 0),
    embedding     vector NOT NULL,
    tsv           tsvector GENERATED ALWAYS AS
                  (to_tsvector('english', section || ' ' || chunk_text)) STORED,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (vector_dims(embedding) = dim)
);
CREATE INDEX knowledge_base_tsv_idx ON knowledge_base USING gin (tsv);
CREATE INDEX knowledge_base_document_idx ON knowledge_base (document);
