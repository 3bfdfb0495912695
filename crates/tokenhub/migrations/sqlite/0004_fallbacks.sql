-- Per model, the models to try, in order, when every channel of the first fails.
CREATE TABLE model_fallbacks (
    model_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    fallback_id TEXT NOT NULL,
    PRIMARY KEY (model_id, position)
);
