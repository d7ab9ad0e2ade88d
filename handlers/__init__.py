"""Message handlers run by mq-service: `example` shows the shape; copy it to start your own."""
