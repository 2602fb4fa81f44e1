//! PLACEHOLDER: golden (uncommitted skeleton, replaced by its owner)
