//! health (see DESIGN.md §3).
