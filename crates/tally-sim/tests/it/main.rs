//! The engine under faults: hand-made crashes and damage (`recovery`), then seeded
//! simulation (`simulation`).

mod recovery;
mod simulation;
mod support;
