"""Documents: versioned files of clients and leads, kept in the storage backend."""
