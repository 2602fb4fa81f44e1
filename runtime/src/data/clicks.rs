//! PLACEHOLDER: clicks (uncommitted skeleton, replaced by its owner)
