"""Large message bodies through S3, in the wire format of the Amazon SQS Extended Client libraries."""
