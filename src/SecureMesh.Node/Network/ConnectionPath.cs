namespace SecureMesh.Node.Network;

/// <summary>How a connection reaches its peer: straight over TCP, through a relay's circuit, or directly after a hole punch.</summary>
public enum ConnectionPath { Direct, Relayed, HolePunched }
