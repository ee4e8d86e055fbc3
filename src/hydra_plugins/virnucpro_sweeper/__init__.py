"""The project's Hydra sweeper plugin (found by Hydra under the `hydra_plugins` namespace)."""
