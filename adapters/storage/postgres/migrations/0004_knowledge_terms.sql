-- Document frequencies of the knowledge base's lexemes, refreshed after each ingest that
-- changes something. Search drops query words that occur in a large share of the chunks
-- (they say nothing about relevance and would make the OR full-text query rank most of
-- the table), the way IDF discounts them in BM25.
CREATE TABLE knowledge_terms (
    lexeme  text PRIMARY KEY,
    ndoc    integer NOT NULL CHECK (ndoc >= 0)
);

CREATE TABLE knowledge_corpus (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    chunks     integer NOT NULL CHECK (chunks >= 0)
);

-- OR over tsqueries (the || operator) as an aggregate.
CREATE AGGREGATE fte_tsquery_or(tsquery) (SFUNC = tsquery_or, STYPE = tsquery);
