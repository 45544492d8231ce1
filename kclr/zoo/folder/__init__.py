"""A zoo folder on disk: its format (`format`), its files and sha256 checks (`files`), safe
extraction of downloaded archives (`safety`)."""
