"""Finding zoo folders: the resolver (`resolve`), the Hub, HTTP downloads and kclr's cache."""
