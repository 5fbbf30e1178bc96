//! metrics (see DESIGN.md §3).
