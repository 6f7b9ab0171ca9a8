//! The papers' models.

pub mod dcgan;
