"""The registry plugin: published weights become pretrained tags of their models."""
