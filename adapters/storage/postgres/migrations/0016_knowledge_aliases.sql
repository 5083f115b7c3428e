-- How customers ask for a section in their own words ("kick someone out" for "Removing a
-- member"): the chunk's aliases, searched and never quoted. Their words join full-text
-- search at weight C (a body word's score, not a title's); each alias gets its own vector,
-- compared with the question in the exact re-rank of the candidates like the sentences.
-- Rows ingested before this migration have none until their next ingest.
ALTER TABLE knowledge_base
    ADD COLUMN aliases text NOT NULL DEFAULT '',
    ADD COLUMN alias_embeddings vector[];
ALTER TABLE knowledge_base ALTER COLUMN tsv SET EXPRESSION AS (
    setweight(to_tsvector('english', section), 'A')
    || setweight(to_tsvector('english', chunk_text), 'B')
    || setweight(to_tsvector('english', aliases), 'C')
);
