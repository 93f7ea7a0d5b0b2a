using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Backup;
using SecureMesh.Node.Control;
using SecureMesh.Node.Discovery;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Node;

/// <summary>How a <see cref="MeshHost"/> is assembled: what runs besides the connections and the transfer engine.</summary>
public sealed class MeshHostOptions
{
    /// <summary>The data directory.</summary>
    public required string Home { get; init; }

    /// <summary>Where to listen (port 0 picks one).</summary>
    public required IPEndPoint Listen { get; init; }

    /// <summary>Where everything logs.</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;

    /// <summary>
    /// A node that runs for a user (<c>run</c>, the TUI): the control API, LAN discovery (per its setting) and the
    /// connector that keeps trusted peers connected; shares re-scanned and unfinished downloads resumed in the
    /// background. False: just the connections and the transfer engine (a one-off command, the demo's peers).
    /// </summary>
    public bool Serve { get; init; }

    /// <summary>
    /// A one-off command's start (<c>get</c>, <c>search</c> without a running node; not with <see cref="Serve"/>, which
    /// connects in the background): before <see cref="MeshHost.StartAsync"/> returns, every trusted peer with a known
    /// address is dialled (for at most <see cref="PeerDialTimeout"/>) and their transfer sessions are waited for (at most
    /// <see cref="PeerSessionTimeout"/>), then the connector keeps redialling the others. False: nothing is dialled.
    /// </summary>
    public bool ConnectPeersFirst { get; init; }

    /// <summary>How long <see cref="ConnectPeersFirst"/> dials.</summary>
    public TimeSpan PeerDialTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long <see cref="ConnectPeersFirst"/> then waits for the connected peers' transfer sessions.</summary>
    public TimeSpan PeerSessionTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Discovery beacons this often (tests shorten it); null: every 5 s.</summary>
    public TimeSpan? BeaconInterval { get; init; }

    /// <summary>The transfer engine's settings; null: the defaults with <see cref="LoggerFactory"/>.</summary>
    public TransferOptions? Transfer { get; init; }

    /// <summary>Test seam: AutoNAT's limits and waits (private addresses allowed on loopback).</summary>
    internal AutoNat.AutoNatOptions? AutoNat { get; init; }

    /// <summary>Test seam: the port mapping's gateway and waits (a serving node maps its port when <c>port-mapping</c> is on).</summary>
    internal PortMapping.PortMappingOptions? PortMapping { get; init; }
}

/// <summary>
/// The node, assembled in one place and started and stopped in one order: the transfer engine, the connections
/// (<see cref="MeshNode"/>: transport, upgrader, connection manager, authorization, protocol router with identify and
/// ping, the transfer protocols registered), then — for a serving node — LAN discovery, the control API and the
/// connector. Stopped in the reverse order. The caller holds the node lock and owns the identity and the database.
/// </summary>
public sealed class MeshHost : IAsyncDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _background = [];

    private MeshHost(SecureMeshDatabase db, TransferService transfer, MeshNode node, PeerConnector connector, DiscoveryService? discovery, ControlServer? control, AutoNat.AutoNatService autoNat)
    {
        AutoNat = autoNat;
        Db = db;
        Transfer = transfer;
        Node = node;
        Connector = connector;
        Discovery = discovery;
        Control = control;
    }

    /// <summary>The database.</summary>
    public SecureMeshDatabase Db { get; }

    /// <summary>The transfer engine.</summary>
    public TransferService Transfer { get; }

    /// <summary>The connections.</summary>
    public MeshNode Node { get; }

    /// <summary>Backup to trusted peers: the holder's protocol and the owner's rounds.</summary>
    public BackupService Backup { get; private init; } = null!;

    /// <summary>Dials trusted peers (started in the background for a serving node; a one-off command calls it).</summary>
    public PeerConnector Connector { get; }

    /// <summary>LAN discovery (a serving node only).</summary>
    internal DiscoveryService? Discovery { get; }

    /// <summary>The control API (a serving node only).</summary>
    internal ControlServer? Control { get; }

    /// <summary>The control socket's path, when the control API runs.</summary>
    public string? ControlSocketPath => Control?.SocketPath;

    /// <summary>LAN discovery's state ("on", "off", …), or "off" when it does not run.</summary>
    public string DiscoveryState => Discovery?.State ?? "off";

    /// <summary>AutoNAT v2: the server for trusted peers, and (for a serving node) the checks of our own addresses.</summary>
    internal AutoNat.AutoNatService AutoNat { get; }

    /// <summary>The router port mapping, when <c>port-mapping</c> is on (a serving node only).</summary>
    internal PortMapping.PortMappingService? PortMapping { get; private set; }

    /// <summary>Called with each download resumed after a restart.</summary>
    public event Action<DownloadHandle>? Resumed;

    /// <summary>Starts everything (and, for <see cref="MeshHostOptions.ConnectPeersFirst"/>, connects the peers); nothing is left running when it throws.</summary>
    public static async Task<MeshHost> StartAsync(NodeIdentity identity, SecureMeshDatabase db, MeshHostOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(options);
        var host = await StartServicesAsync(identity, db, options, cancellationToken).ConfigureAwait(false);
        if (options.ConnectPeersFirst && !options.Serve)
        {
            try
            {
                var sessions = await host.Connector.ConnectAllAsync(options.PeerDialTimeout, cancellationToken).ConfigureAwait(false);
                await host.Transfer.WaitForPeersAsync(sessions, options.PeerSessionTimeout, cancellationToken).ConfigureAwait(false);
                host.Connector.Start();
            }
            catch
            {
                await host.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
        return host;
    }

    private static async Task<MeshHost> StartServicesAsync(NodeIdentity identity, SecureMeshDatabase db, MeshHostOptions options, CancellationToken cancellationToken)
    {
        var loggerFactory = options.LoggerFactory;
        var transfer = new TransferService(db, identity, options.Home, options.Transfer ?? new TransferOptions { LoggerFactory = loggerFactory });
        var backup = new BackupService(identity, db, options.Home, new BackupOptions { LoggerFactory = loggerFactory });
        MeshNode? node = null;
        DiscoveryService? discovery = null;
        PeerConnector? connector = null;
        var autoNat = new AutoNat.AutoNatService(options.AutoNat ?? new(), loggerFactory);
        var addressBook = new Addresses.AddressBook(db, loggerFactory.CreateLogger("SecureMesh.Addresses"));
        try
        {
            var defaults = new NodeOptions { Home = options.Home };
            node = MeshNode.Start(identity, db, new NodeOptions
            {
                Home = options.Home,
                Listen = options.Listen,
                LoggerFactory = loggerFactory,
                SessionHandler = transfer.HandleSessionAsync,
                Protocols = [.. transfer.StreamProtocols, autoNat.Server.Protocol, addressBook.Protocol, .. backup.StreamProtocols],
                Policy = backup.Policy(),
                SideConnections = autoNat.Client,
                HandshakeTimeout = options.Serve ? SettingSeconds(db, NodeSettings.HandshakeTimeout, defaults.HandshakeTimeout) : defaults.HandshakeTimeout,
                MaxSessions = options.Serve ? SettingInt(db, NodeSettings.MaxConnections, defaults.MaxSessions) : defaults.MaxSessions,
            });
            autoNat.Attach(node);
            backup.Attach(node);
            addressBook.Attach(node);
            connector = new PeerConnector(node, null, loggerFactory) { FindElsewhere = addressBook.AskAsync };
            if (!options.Serve)
            {
                return new MeshHost(db, transfer, node, connector, null, null, autoNat) { Backup = backup };
            }
            var discovered = new DiscoveredPeers();
            var listen = options.Listen;
            discovery = new DiscoveryService(identity, node, db, discovered, new DiscoveryOptions
            {
                Interface = listen.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? listen.Address : null,
                Interval = options.BeaconInterval ?? TimeSpan.FromSeconds(5),
                LoggerFactory = loggerFactory,
            });
            if (SettingDefinition.ParseSwitch(db.Config.Get(NodeSettings.Discovery) ?? "on"))
            {
                await discovery.SetEnabledAsync(true, cancellationToken).ConfigureAwait(false);
            }
            var control = await ControlServer.StartAsync(node, db, new ControlServerOptions
            {
                Home = options.Home,
                LoggerFactory = loggerFactory,
                Discovery = discovery,
                Discovered = discovered,
                Transfer = transfer,
            }, cancellationToken).ConfigureAwait(false);
            var host = new MeshHost(db, transfer, node, connector, discovery, control, autoNat) { Backup = backup };
            // New addresses (mapped, or observed and confirmed) reach the peers at once by identify push.
            node.Reach.AddressesChanged += () => _ = host.PushAddressesAsync();
            host.StartPortMapping(options, loggerFactory);
            autoNat.Start();
            connector.Start();
            host.StartBackgroundWork();
            return host;
        }
        catch
        {
            // Everything started so far stops again (its loops and timers would outlive the failed start).
            if (connector is not null)
            {
                await connector.DisposeAsync().ConfigureAwait(false);
            }
            await autoNat.DisposeAsync().ConfigureAwait(false);
            if (discovery is not null)
            {
                await discovery.DisposeAsync().ConfigureAwait(false);
            }
            if (node is not null)
            {
                await node.DisposeAsync().ConfigureAwait(false);
            }
            await transfer.DisposeAsync().ConfigureAwait(false);
            await backup.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static TimeSpan SettingSeconds(SecureMeshDatabase db, string key, TimeSpan fallback) =>
        db.Config.Get(key) is { } text ? TimeSpan.FromSeconds(int.Parse(text, CultureInfo.InvariantCulture)) : fallback;

    private static int SettingInt(SecureMeshDatabase db, string key, int fallback) =>
        db.Config.Get(key) is { } text ? int.Parse(text, CultureInfo.InvariantCulture) : fallback;

    private void StartPortMapping(MeshHostOptions options, ILoggerFactory loggerFactory)
    {
        if (!SettingDefinition.ParseSwitch(Db.Config.Get(NodeSettings.PortMapping) ?? "on") || IPAddress.IsLoopback(Node.LocalEndPoint.Address))
        {
            return;
        }
        PortMapping = new PortMapping.PortMappingService(Node.Reach, Node.LocalEndPoint.Port, options.PortMapping ?? new(), loggerFactory.CreateLogger("SecureMesh.PortMapping"));
        PortMapping.Start();
    }

    private async Task PushAddressesAsync()
    {
        try
        {
            await Node.PushIdentifyAsync(_stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or Core.SecureMeshException)
        {
        }
    }

    private void StartBackgroundWork()
    {
        var stop = _stopping.Token;
        // Files changed while the node was down are re-indexed before they are served as anything.
        _background.Add(Transfer.Shares.RescanAsync(null, stop));
        // Backed-up paths are scanned when they change and hourly; holders are challenged every backup-check-interval.
        _background.Add(Backup.RunBackgroundAsync(TimeSpan.FromHours(1), stop));
        // An idle node gives back what its last burst of work left in the GC's young generation (IdleMemoryTrimmer).
        _background.Add(IdleMemoryTrimmer.ForProcess().RunAsync(TimeProvider.System, stop));
        // Unfinished downloads carry on once the peers had a chance to connect.
        _background.Add(Task.Run(async () =>
        {
            var sessions = await Connector.ConnectAllAsync(TimeSpan.FromSeconds(10), stop).ConfigureAwait(false);
            if (Db.Downloads.ListResumable().Count == 0)
            {
                return;
            }
            await Transfer.WaitForPeersAsync(Math.Max(1, sessions), TimeSpan.FromSeconds(10), stop).ConfigureAwait(false);
            foreach (var handle in Transfer.ResumeDownloads())
            {
                Resumed?.Invoke(handle);
            }
        }, stop));
    }

    /// <summary>Stops in the reverse order of the start: connector, control API, discovery, connections, transfer engine.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_background).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        await Connector.DisposeAsync().ConfigureAwait(false);
        await AutoNat.DisposeAsync().ConfigureAwait(false);
        if (PortMapping is not null)
        {
            // The mapping is deleted while the node can still say so; a SIGTERM ends here too.
            await PortMapping.DisposeAsync().ConfigureAwait(false);
        }
        if (Control is not null)
        {
            await Control.DisposeAsync().ConfigureAwait(false);
        }
        if (Discovery is not null)
        {
            await Discovery.DisposeAsync().ConfigureAwait(false);
        }
        await Node.DisposeAsync().ConfigureAwait(false);
        await Transfer.DisposeAsync().ConfigureAwait(false);
        await Backup.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }
}
