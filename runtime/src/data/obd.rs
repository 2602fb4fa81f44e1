//! PLACEHOLDER: obd (uncommitted skeleton, replaced by its owner)
