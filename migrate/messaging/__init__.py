"""Events between hosts over SNS and SQS, on AWS or on moto's emulator.

- `topology`: declare topics, queues (each with a dead-letter queue) and
  filtered subscriptions; `ensure` creates them through the API.
- `publisher`: envelopes to SNS, attributes as message attributes.
- `relay`: outbox tables to topics, in position order, at least once.
- `message`: what a consumer receives (raw or SNS-wrapped delivery).
- `consumer`: a blocking consumer loop; `nameko_sqs`: a Nameko entrypoint;
  `lambda_runtime`: a local stand-in for Lambda's SQS event source mapping.
- `emulator`, `clients`: moto's server as a child process; boto3 clients.
- `errors`: every error raised here, under `MessagingError`.

Delivery is at least once everywhere; consumers deduplicate by event id.
"""
