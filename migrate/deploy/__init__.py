"""The way to AWS: packages, SAM templates and routing at scale.

- `functions`: the Lambda functions a context's side effects become, read
  from the manifest;
- `package`: one reproducible zip per function, and the service's artifact;
- `template`: a SAM template derived from the same topology `migrate up`
  creates locally;
- `checks`: the template translated by aws-sam-translator and linted by
  cfn-lint, with the kit's own rules on top (`rules`);
- `routes`: the router's table as an nginx configuration or ALB rules;
- `commands`: `migrate deploy build|template|routes`.
"""
