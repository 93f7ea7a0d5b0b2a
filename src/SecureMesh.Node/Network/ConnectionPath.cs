namespace SecureMesh.Node.Network;

/// <summary>How a connection reaches its peer.</summary>
public enum ConnectionPath
{
    /// <summary>A TCP connection dialled or accepted the ordinary way.</summary>
    Direct,
    /// <summary>A circuit through a relay (circuit relay v2): the end-to-end Noise session runs inside a relay's streams.</summary>
    Relayed,
    /// <summary>A direct TCP connection made by hole punching (DCUtR) after a relayed one.</summary>
    HolePunched,
}
