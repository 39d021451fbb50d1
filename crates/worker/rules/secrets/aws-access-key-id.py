# Fake values generated for Picket's rule tests.
import boto3

# ruleid: picket.secrets.aws-access-key-id
client = boto3.client("s3", aws_access_key_id="AKIAODGS4KBA2RERMESF", aws_secret_access_key=SECRET)
