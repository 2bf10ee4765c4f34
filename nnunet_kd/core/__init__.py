"""Task-free machinery: the task registry."""
