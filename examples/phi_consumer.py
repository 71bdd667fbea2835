"""A consumer stack that keeps PHI under the production PHI key: S3, Aurora, DynamoDB, Secrets Manager.

Deployed by ``scrybe-production-stack-deployer`` (the role named in ``stacks/production.py`` under
``key_use_through_services`` with dynamodb, rds, s3 and secretsmanager): CloudFormation makes every
call below with that role's credentials, and each service reaches the key through itself, which is
what the key policy's ``kms:ViaService`` conditions allow. Aurora and DynamoDB attach the key with
grants they create for the cluster and the table (``kms:GrantIsForAWSResource``); Secrets Manager
generates the first secret value's data key as the caller; S3 needs the key only when objects are
written. Run ``python examples/phi_consumer.py`` to print the template; the test suite renders and
cfn-lints it.
"""

from __future__ import annotations

import sys

from troposphere import Output, Ref, Tags, Template, dynamodb, rds, s3, secretsmanager

import scrybe_kms
from scrybe_kms.template.context import context, template_context

ENVIRONMENT = "production"


def build() -> Template:
    key_arn = scrybe_kms.kms_key_arn(ENVIRONMENT)  # {"Fn::ImportValue": "scrybe-kms-production-KmsKeyArn"}
    tags = Tags(DataClassification="PHI", Environment=ENVIRONMENT)
    t = Template(Description="Example PHI consumer: S3, Aurora, DynamoDB and Secrets Manager under the PHI key")
    t.set_metadata(template_context(
        arch="PHI in S3, Aurora, DynamoDB and Secrets Manager, each encrypted with the imported PHI key",
        must=["every PHI store uses the scrybe-kms production key, imported, never a copy of its ARN"]))
    t.add_resource(s3.Bucket(
        "PhiDocuments",
        Metadata=context("PHI documents; SSE-KMS with the PHI key."),
        BucketEncryption=s3.BucketEncryption(ServerSideEncryptionConfiguration=[s3.ServerSideEncryptionRule(
            ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(SSEAlgorithm="aws:kms",
                                                                           KMSMasterKeyID=key_arn),
            BucketKeyEnabled=True)]),
        PublicAccessBlockConfiguration=s3.PublicAccessBlockConfiguration(
            BlockPublicAcls=True, BlockPublicPolicy=True, IgnorePublicAcls=True, RestrictPublicBuckets=True),
        VersioningConfiguration=s3.VersioningConfiguration(Status="Enabled"),
        Tags=tags,
        DeletionPolicy="Retain", UpdateReplacePolicy="Retain",
    ))
    secret = t.add_resource(secretsmanager.Secret(
        "ApiSigningSecret",
        Metadata=context("A secret the application reads; encrypted with the PHI key."),
        KmsKeyId=key_arn,
        GenerateSecretString=secretsmanager.GenerateSecretString(
            PasswordLength=64, ExcludePunctuation=True),
        Tags=tags,
        DeletionPolicy="Retain", UpdateReplacePolicy="Retain",
    ))
    t.add_resource(rds.DBCluster(
        "PhiDatabase",
        Metadata=context("PHI records; storage and the managed master password under the PHI key."),
        Engine="aurora-postgresql",
        StorageEncrypted=True,
        KmsKeyId=key_arn,
        MasterUsername="scrybe",
        ManageMasterUserPassword=True,
        MasterUserSecret=rds.MasterUserSecret(KmsKeyId=key_arn),
        DeletionProtection=True,
        BackupRetentionPeriod=35,
        Tags=tags,
        DeletionPolicy="Snapshot", UpdateReplacePolicy="Snapshot",
    ))
    t.add_resource(dynamodb.Table(
        "PhiRecords",
        Metadata=context("PHI items; table encryption with the PHI key."),
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[dynamodb.AttributeDefinition(AttributeName="id", AttributeType="S")],
        KeySchema=[dynamodb.KeySchema(AttributeName="id", KeyType="HASH")],
        SSESpecification=dynamodb.SSESpecification(SSEEnabled=True, SSEType="KMS", KMSMasterKeyId=key_arn),
        PointInTimeRecoverySpecification=dynamodb.PointInTimeRecoverySpecification(
            PointInTimeRecoveryEnabled=True),
        DeletionProtectionEnabled=True,
        Tags=tags,
        DeletionPolicy="Retain", UpdateReplacePolicy="Retain",
    ))
    t.add_output(Output("ApiSecretArn", Description="Read by the application at run time", Value=Ref(secret)))
    return t


if __name__ == "__main__":
    sys.stdout.write(build().to_json(indent=1, sort_keys=True) + "\n")
