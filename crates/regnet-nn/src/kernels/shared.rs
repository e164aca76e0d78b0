//! An output buffer that parallel tasks share, each writing only elements no other task
//! touches (a group's columns, a task's channels), which slices cannot express when those
//! elements interleave.

/// A pointer to the start of an output buffer, for tasks that write disjoint elements.
#[derive(Clone, Copy)]
pub(super) struct SharedOut<T>(pub(super) *mut T);

// SAFETY: only a pointer; every user writes through it elements that no other task reads
// or writes (each says which).
unsafe impl<T> Send for SharedOut<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SharedOut<T> {}
