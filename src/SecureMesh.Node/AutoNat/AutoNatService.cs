using System.Net;
using Microsoft.Extensions.Logging;
using SecureMesh.Core.Libp2p.AutoNat;
using SecureMesh.Node.Network;

namespace SecureMesh.Node.AutoNat;

/// <summary>
/// AutoNAT v2 for a node: the server for trusted peers, and a client that keeps each of our addresses' reachability
/// (<see cref="NodeReach"/>) up to date by asking up to three connected trusted peers that speak the protocol: at start,
/// when our addresses change, when a peer connects, and every <see cref="AutoNatOptions.Interval"/>.
/// </summary>
internal sealed class AutoNatService : IAsyncDisposable
{
    private readonly AutoNatOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly SemaphoreSlim _wake = new(0, 1);
    private MeshNode? _node;
    private Task _loop = Task.CompletedTask;

    public AutoNatService(AutoNatOptions options, ILoggerFactory loggerFactory)
    {
        _options = options;
        _logger = loggerFactory.CreateLogger("SecureMesh.AutoNat");
        Server = new AutoNatServer(options, _logger);
        Client = new AutoNatClient(options, _logger);
    }

    public AutoNatServer Server { get; }

    public AutoNatClient Client { get; }

    /// <summary>Binds to the started node (the server dials back through it).</summary>
    public void Attach(MeshNode node)
    {
        _node = node;
        Server.Attach(node);
    }

    /// <summary>Starts the client's checks.</summary>
    public void Start()
    {
        var node = _node ?? throw new InvalidOperationException("attach the node first");
        node.Reach.AddressesChanged += Wake;
        node.SessionOpened += _ => Wake();
        _loop = Task.Run(() => RunAsync(node, _stopping.Token));
    }

    private void Wake()
    {
        try
        {
            if (_wake.CurrentCount == 0)
            {
                _wake.Release();
            }
        }
        catch (Exception e) when (e is SemaphoreFullException or ObjectDisposedException)
        {
        }
    }

    private async Task RunAsync(MeshNode node, CancellationToken stop)
    {
        try
        {
            await Task.Delay(_options.FirstCheck, _options.Time, stop).ConfigureAwait(false);
            while (!stop.IsCancellationRequested)
            {
                await CheckAllAsync(node, stop).ConfigureAwait(false);
                using var interval = CancellationTokenSource.CreateLinkedTokenSource(stop);
                interval.CancelAfter(_options.Interval);
                try
                {
                    await _wake.WaitAsync(interval.Token).ConfigureAwait(false);
                    // Let identify tell us our observed address before asking about it.
                    await Task.Delay(TimeSpan.FromSeconds(1), _options.Time, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!stop.IsCancellationRequested)
                {
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>One round: every candidate address asked of up to <see cref="AutoNatOptions.ServersPerAddress"/> trusted peers.</summary>
    internal async Task CheckAllAsync(MeshNode node, CancellationToken cancellationToken)
    {
        var servers = node.Sessions
            .Where(s => s.Identified?.Protocols.Contains(AutoNatMessages.DialRequestProtocol, StringComparer.Ordinal) == true)
            .OrderBy(s => s.Since)
            .Take(_options.ServersPerAddress)
            .ToList();
        if (servers.Count == 0)
        {
            return;
        }
        foreach (var address in Candidates(node))
        {
            Reachability? verdict = null;
            foreach (var server in servers)
            {
                var answer = await Client.CheckAsync(server, address, cancellationToken).ConfigureAwait(false);
                if (answer == Reachability.Reachable)
                {
                    verdict = answer;
                    AutoNatLog.Result(_logger, address.ToString(), "reachable", server.PeerId.Text);
                    break;
                }
                if (answer == Reachability.Unreachable)
                {
                    verdict = answer;
                }
            }
            if (verdict is { } state)
            {
                if (state == Reachability.Unreachable && node.Reach.StateOf(address) != Reachability.Unreachable)
                {
                    AutoNatLog.Result(_logger, address.ToString(), "unreachable", string.Join(", ", servers.Select(s => s.PeerId.Text)));
                }
                node.Reach.SetState(address, state, _options.Time.GetUtcNow());
            }
        }
    }

    /// <summary>Our listen addresses and the learned ones (mapped, observed), public ones only unless private ones are allowed.</summary>
    private IEnumerable<IPEndPoint> Candidates(MeshNode node) =>
        ListenAddresses.Expand(node.LocalEndPoint)
            .Concat(node.Reach.External.Select(a => a.EndPoint))
            .Distinct()
            .Where(e => _options.AllowPrivateAddresses || !AutoNatOptions.IsPrivate(e.Address));

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stopping.Dispose();
        _wake.Dispose();
    }
}
