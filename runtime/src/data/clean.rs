//! PLACEHOLDER: clean (uncommitted skeleton, replaced by its owner)
