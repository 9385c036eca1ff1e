//! Deterministic figures of a fixed scenario and seed (placeholder until the engine's node lands).
