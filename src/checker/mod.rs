//! checker (see DESIGN.md §3).
