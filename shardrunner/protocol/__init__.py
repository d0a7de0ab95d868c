"""Wire formats shared by the simulator and the gateway connections: opcodes, close codes, codecs."""
