using System.Net;
using Microsoft.Extensions.Logging;
using SecureMesh.Core.Identity;
using SecureMesh.Node;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Cli;

/// <summary>
/// The core every node of this program is built on (<see cref="NodeHost"/> for <c>run</c> and <c>tui</c>,
/// <see cref="NodeRuntime"/> for one-off commands, the demo's peers): a transfer engine serving every session of a
/// trust-enforcing listener.
/// </summary>
internal static class LocalNode
{
    /// <summary>
    /// Starts the transfer engine and the listener on <paramref name="listen"/>; <paramref name="handshakeTimeout"/> and
    /// <paramref name="maxSessions"/> default to <see cref="NodeOptions"/>'s. Nothing is left running when it throws.
    /// </summary>
    public static (TransferService Transfer, MeshNode Node) Start(NodeIdentity identity, SecureMeshDatabase db, string home,
        IPEndPoint listen, ILoggerFactory loggerFactory, TimeSpan? handshakeTimeout = null, int? maxSessions = null)
    {
        var transfer = new TransferService(db, identity, home, new TransferOptions { LoggerFactory = loggerFactory });
        try
        {
            var defaults = new NodeOptions { Home = home };
            var node = MeshNode.Start(identity, db, new NodeOptions
            {
                Home = home,
                Listen = listen,
                LoggerFactory = loggerFactory,
                SessionHandler = transfer.HandleSessionAsync,
                Protocols = transfer.StreamProtocols,
                HandshakeTimeout = handshakeTimeout ?? defaults.HandshakeTimeout,
                MaxSessions = maxSessions ?? defaults.MaxSessions,
            });
            return (transfer, node);
        }
        catch
        {
            transfer.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
    }
}
