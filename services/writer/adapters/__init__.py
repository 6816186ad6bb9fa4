"""The writer's edges: Microsoft Graph and its own MongoDB collections."""
