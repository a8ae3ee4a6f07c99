"""Code shared by the pipeline's Lambda functions; pure logic, no AWS clients."""
