"""The one TFLite graph layer: reading, inspecting, cutting and rewriting .tflite flatbuffers with the object API
of LiteRT's own generated schema (`ai_edge_litert.schema_py_generated`). graph.py parses and re-serialises a model
and holds the `Graph` editing helpers the export rewrites use, ops.py lists a model's ops with their shapes, cost
features and op-type groups, and opcut.py cuts single-op models out of one. Nothing here runs an interpreter or
imports TensorFlow, so the analysis and report side stays light.
"""
