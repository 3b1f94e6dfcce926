"""Images in, model-ready arrays out: preprocessing from metadata, image folders, the bundled digits set."""
