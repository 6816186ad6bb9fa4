"""The projector: materialises the 1:1 read model in MongoDB and serves its query API."""
