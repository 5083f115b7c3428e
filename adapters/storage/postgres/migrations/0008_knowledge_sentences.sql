-- Sentence-level evidence for re-ranking: each chunk's title and each of its sentences
-- (embedded after the title) get their own vector, by the same embedder as the chunk.
-- Search compares the question with them only for the candidates the full-text and
-- HNSW lists found (an exact re-rank of a few dozen rows), so no index is needed.
-- NULL for rows ingested before this migration: the next ingest fills them.
ALTER TABLE knowledge_base
    ADD COLUMN title_embedding vector,
    ADD COLUMN sentence_embeddings vector[];
