"""The multi-language component package: the provider that hosts the public components for every Pulumi language.

``host`` lists the components and serves them over Pulumi's ResourceProvider gRPC protocol, with the
schema inferred from their typed Args (``plugin/`` at the repository root is the source-based plugin
``pulumi package add`` runs); ``client`` starts that provider as the Pulumi engine does and calls
``GetSchema`` and ``Construct``; ``schema`` compares two schemas input by input for reviews.
"""
