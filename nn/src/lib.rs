//! saddle's layer library. Modules, initialisers, optimisers and checkpoints arrive with the nn
//! issue; for now this crate only re-exports the engine so downstream code has one import path.

pub use saddle_engine as engine;
