"""One ComponentResource per architectural part of the pipeline, each with its typed args."""
