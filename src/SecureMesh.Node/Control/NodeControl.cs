using System.Text.Json;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Node.Control;

/// <summary>
/// The public entry points of the control contract besides its interfaces (<see cref="INodeControl"/>,
/// <see cref="ITransferControl"/>, <see cref="IGroupControl"/>) and records: where the control socket of a data directory
/// is and how its JSON is written, the contract served from the database alone when no node runs, and the checks
/// both ends apply to user input. The implementations stay internal to the node.
/// </summary>
public static class NodeControl
{
    /// <summary>The control socket of the node whose data directory is <paramref name="home"/>.</summary>
    public static string SocketPathFor(string home) => ControlServer.SocketPathFor(home);

    /// <summary>The JSON settings of the control API (the source-generated contract types, the property names of the design).</summary>
    public static JsonSerializerOptions Json => ControlServer.Json;

    /// <summary>
    /// The node contract answered from <paramref name="db"/> alone, for commands run while no node is running (no
    /// connections, no discovery: those report themselves as not running).
    /// </summary>
    public static INodeControl Offline(string home, SecureMeshDatabase db) => new NodeControlService(home, db);

    /// <summary>Groups and share audiences, against <paramref name="db"/>.</summary>
    public static IGroupControl Groups(SecureMeshDatabase db) => new GroupControlService(db);

    /// <summary>What <c>transfers</c> shows of a download running in this process.</summary>
    public static DownloadInfo Describe(DownloadHandle handle) => TransferControlService.ToInfo(handle);

    /// <summary>A peer address as stored: a multiaddr (ending in <c>/p2p/</c><paramref name="peer"/>) or HOST:PORT; throws <see cref="Core.SecureMeshException"/> (InvalidInput) otherwise.</summary>
    public static string NormalizeAddress(string text, PeerId peer) => NodeControlService.NormalizeAddress(text, peer);

    /// <summary>A peer's local name, trimmed; null when empty; throws <see cref="Core.SecureMeshException"/> (InvalidInput) over 64 characters or with control characters.</summary>
    public static string? ValidateName(string? name) => NodeControlService.ValidateName(name);

    /// <summary>A block reason, trimmed; null when empty; throws <see cref="Core.SecureMeshException"/> (InvalidInput) over 500 characters or with control characters.</summary>
    public static string? ValidateReason(string? reason) => NodeControlService.ValidateReason(reason);
}
