"""The courses service: the catalogue, lessons and their files, curriculum, search and seats."""
