namespace SecureMesh.Node.Network;

/// <summary>The names of <see cref="ConnectionPath"/> in <c>status --json</c> (fixed: scripts rely on them).</summary>
public static class ConnectionPaths
{
    public const string Direct = "direct";
    public const string Relayed = "relayed";
    public const string HolePunched = "holepunched";

    public static string Name(ConnectionPath path) => path switch
    {
        ConnectionPath.Relayed => Relayed,
        ConnectionPath.HolePunched => HolePunched,
        _ => Direct,
    };

    /// <summary>One short phrase for people: <c>direct</c>, <c>holepunched</c>, or <c>relayed via PEER</c>.</summary>
    public static string Describe(string path, string? relay) =>
        path == Relayed && relay is not null ? $"{Relayed} via {relay}" : path;
}
