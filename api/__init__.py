"""The HTTP front end: FastAPI app, routers, schemas, and the model cache."""
