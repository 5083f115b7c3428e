-- The full-text half of knowledge search reads the tsvector of every chunk its query
-- selects (at 100k chunks a mid-frequency word selects thousands). In knowledge_base a
-- row is ~1.7 kB (a vector stays inline), so those reads touch one page per chunk, most
-- of them outside shared buffers once the vectors and the HNSW index fill them. Here a
-- row is ~200 bytes: the whole table is a few MB and stays cached (100k chunks,
-- interleaved A/B of the search statement: p99 -30 %, the same results).
-- knowledge_base.tsv stays: the evidence of the few candidates is read there.
CREATE TABLE knowledge_lexemes (
    id   text PRIMARY KEY REFERENCES knowledge_base (id) ON DELETE CASCADE ON UPDATE CASCADE,
    tsv  tsvector NOT NULL
);
INSERT INTO knowledge_lexemes (id, tsv) SELECT id, tsv FROM knowledge_base;
CREATE INDEX knowledge_lexemes_tsv_idx ON knowledge_lexemes USING gin (tsv);
DROP INDEX knowledge_base_tsv_idx;

-- Kept in step by the database, so every writer (ingest, bulk COPY) fills it.
CREATE FUNCTION knowledge_lexemes_copy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO knowledge_lexemes (id, tsv) VALUES (NEW.id, NEW.tsv)
    ON CONFLICT (id) DO UPDATE SET tsv = excluded.tsv;
    RETURN NULL;
END $$;
CREATE TRIGGER knowledge_lexemes_copy AFTER INSERT OR UPDATE ON knowledge_base
    FOR EACH ROW EXECUTE FUNCTION knowledge_lexemes_copy();
