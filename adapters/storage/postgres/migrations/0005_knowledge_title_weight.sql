-- Section titles weigh more than body text in full-text search: the title is labelled
-- weight A, the body weight B, so search can count a query word found in the title
-- twice (a title says what the whole section is about; a body word may be incidental).
-- PostgreSQL 17+ rewrites the stored column and its GIN index in place.
ALTER TABLE knowledge_base ALTER COLUMN tsv SET EXPRESSION AS (
    setweight(to_tsvector('english', section), 'A')
    || setweight(to_tsvector('english', chunk_text), 'B')
);
