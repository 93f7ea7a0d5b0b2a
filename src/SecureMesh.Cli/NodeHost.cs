using System.Net;
using Microsoft.Extensions.Logging;
using SecureMesh.Core.Identity;
using SecureMesh.Node;
using SecureMesh.Node.Control;
using SecureMesh.Node.Discovery;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Cli;

/// <summary>
/// Everything a running node is made of (the trust-enforcing listener, the transfer engine, the control socket,
/// LAN discovery, the dialler that keeps trusted peers connected), started and stopped as one: used by <c>run</c>
/// and by <c>tui</c> when it hosts the node itself. The caller holds the node lock.
/// </summary>
internal sealed class NodeHost : IAsyncDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _background = [];

    private NodeHost(SecureMeshDatabase db, TransferService transfer, MeshNode node, DiscoveryService discovery, ControlServer control, PeerConnector connector)
    {
        Db = db;
        Transfer = transfer;
        Node = node;
        Discovery = discovery;
        Control = control;
        Connector = connector;
    }

    public SecureMeshDatabase Db { get; }

    public TransferService Transfer { get; }

    public MeshNode Node { get; }

    public DiscoveryService Discovery { get; }

    public ControlServer Control { get; }

    public PeerConnector Connector { get; }

    /// <summary>Called with each download resumed after a restart.</summary>
    public event Action<DownloadHandle>? Resumed;

    public static async Task<NodeHost> StartAsync(string home, NodeIdentity identity, SecureMeshDatabase db, IPEndPoint endPoint, ILoggerFactory loggerFactory, TimeSpan? beaconInterval, CancellationToken cancellationToken)
    {
        var (transfer, node) = LocalNode.Start(identity, db, home, endPoint, loggerFactory,
            TimeSpan.FromSeconds(int.Parse(db.Config.Get(NodeSettings.HandshakeTimeout) ?? "5", System.Globalization.CultureInfo.InvariantCulture)),
            int.Parse(db.Config.Get(NodeSettings.MaxConnections) ?? "256", System.Globalization.CultureInfo.InvariantCulture));
        DiscoveryService? discovery = null;
        try
        {
            var discovered = new DiscoveredPeers();
            discovery = new DiscoveryService(identity, node, db, discovered, new DiscoveryOptions
            {
                Interface = endPoint.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? endPoint.Address : null,
                Interval = beaconInterval ?? TimeSpan.FromSeconds(5),
                LoggerFactory = loggerFactory,
            });
            if (SettingDefinition.ParseSwitch(db.Config.Get(NodeSettings.Discovery) ?? "on"))
            {
                await discovery.SetEnabledAsync(true, cancellationToken);
            }
            var control = await ControlServer.StartAsync(node, db, new ControlServerOptions
            {
                Home = home,
                LoggerFactory = loggerFactory,
                Discovery = discovery,
                Discovered = discovered,
                Transfer = transfer,
            }, cancellationToken);
            var connector = new PeerConnector(node, null, loggerFactory);
            var host = new NodeHost(db, transfer, node, discovery, control, connector);
            connector.Start();
            host.StartBackgroundWork();
            return host;
        }
        catch
        {
            if (discovery is not null)
            {
                await discovery.DisposeAsync();
            }
            await node.DisposeAsync();
            await transfer.DisposeAsync();
            throw;
        }
    }

    private void StartBackgroundWork()
    {
        var stop = _stopping.Token;
        // Files changed while the node was down are re-indexed before they are served as anything.
        _background.Add(Transfer.Shares.RescanAsync(null, stop));
        // Unfinished downloads carry on once the peers had a chance to connect.
        _background.Add(Task.Run(async () =>
        {
            var sessions = await Connector.ConnectAllAsync(TimeSpan.FromSeconds(10), stop);
            if (Db.Downloads.ListResumable().Count == 0)
            {
                return;
            }
            await Transfer.WaitForPeersAsync(Math.Max(1, sessions), TimeSpan.FromSeconds(10), stop);
            foreach (var handle in Transfer.ResumeDownloads())
            {
                Resumed?.Invoke(handle);
            }
        }, stop));
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        try
        {
            await Task.WhenAll(_background);
        }
        catch (OperationCanceledException)
        {
        }
        await Connector.DisposeAsync();
        await Control.DisposeAsync();
        await Discovery.DisposeAsync();
        await Node.DisposeAsync();
        await Transfer.DisposeAsync();
        _stopping.Dispose();
    }
}
