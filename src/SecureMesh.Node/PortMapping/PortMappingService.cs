using System.Net;
using Microsoft.Extensions.Logging;
using SecureMesh.Node.Network;

namespace SecureMesh.Node.PortMapping;

/// <summary>How the port mapping runs (tests point it at a fake gateway and shorten the waits).</summary>
internal sealed record PortMappingOptions
{
    /// <summary>The gateway's PCP/NAT-PMP endpoint; null: the default route's gateway on port 5351.</summary>
    public IPEndPoint? Gateway { get; init; }

    /// <summary>The lifetime asked for (RFC 6886 recommends 7200 s); renewed at half of what the gateway grants.</summary>
    public TimeSpan Lifetime { get; init; } = TimeSpan.FromHours(2);

    /// <summary>The wait after a failed attempt (doubled each time, up to <see cref="MaxRetry"/>).</summary>
    public TimeSpan Retry { get; init; } = TimeSpan.FromMinutes(1);

    public TimeSpan MaxRetry { get; init; } = TimeSpan.FromMinutes(30);

    public PortMappingTimings Timings { get; init; } = new();

    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <summary>
/// Keeps a TCP mapping of the listen port on the home router (PCP, else NAT-PMP): requested at start, renewed at half
/// its lifetime, deleted when the node stops. The mapped address is advertised (identify, <c>id</c>) while it lasts.
/// A network without a gateway answering costs a few datagrams in the background and a debug line.
/// </summary>
internal sealed class PortMappingService : IAsyncDisposable
{
    private readonly NodeReach _reach;
    private readonly int _port;
    private readonly PortMappingOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private Task _loop = Task.CompletedTask;
    private PortMappingClient? _client;
    private GrantedMapping? _current;
    private string _gatewayText = "-";

    public PortMappingService(NodeReach reach, int internalPort, PortMappingOptions options, ILogger logger)
    {
        _reach = reach;
        _port = internalPort;
        _options = options;
        _logger = logger;
    }

    /// <summary>The mapping held now, if any.</summary>
    public GrantedMapping? Current => _current;

    public void Start() => _loop = Task.Run(() => RunAsync(_stopping.Token));

    private async Task RunAsync(CancellationToken stop)
    {
        var gateway = _options.Gateway ?? (DefaultGateway.Find() is { } address ? new IPEndPoint(address, PcpMessages.Port) : null);
        if (gateway is null)
        {
            _reach.PortMapping = "no gateway";
            PortMappingLog.NoGateway(_logger);
            return;
        }
        _gatewayText = gateway.Address.ToString();
        _client = new PortMappingClient(gateway, _options.Timings, _options.Time, _logger);
        var retry = _options.Retry;
        _reach.PortMapping = $"asking {_gatewayText}";
        while (!stop.IsCancellationRequested)
        {
            TimeSpan wait;
            MappingOutcome outcome;
            try
            {
                outcome = await _client.MapAsync(_port, _current?.External.Port ?? _port, _options.Lifetime, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (System.Net.Sockets.SocketException e)
            {
                outcome = new MappingOutcome(null, $"cannot reach gateway {_gatewayText}: {e.SocketErrorCode}", NoGateway: true);
            }
            if (outcome.Granted is { } granted && granted.Lifetime > TimeSpan.Zero)
            {
                var previous = _current;
                _current = granted;
                _reach.SetMapped(granted.External, previous?.External);
                _reach.PortMapping = $"{granted.External} by {granted.Protocol} from {_gatewayText}";
                PortMappingLog.Mapped(_logger, granted.External.ToString(), _port, granted.Protocol, _gatewayText, granted.Lifetime);
                retry = _options.Retry;
                // Renew at half the granted lifetime (RFC 6886 section 3.3, RFC 6887 section 11.2.1), at least every few seconds apart.
                wait = TimeSpan.FromTicks(Math.Max(granted.Lifetime.Ticks / 2, TimeSpan.FromSeconds(2).Ticks));
            }
            else
            {
                var reason = outcome.Failure ?? "the gateway granted no lifetime";
                _reach.PortMapping = outcome.NoGateway ? "no gateway answering" : $"refused: {reason}";
                if (_current is { } lost)
                {
                    _reach.SetMapped(null, lost.External);
                    _current = null;
                }
                wait = retry;
                retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, _options.MaxRetry.Ticks));
                if (outcome.NoGateway)
                {
                    PortMappingLog.GatewayUnreachable(_logger, _gatewayText, reason);
                }
                else
                {
                    PortMappingLog.Failed(_logger, reason, wait);
                }
            }
            try
            {
                await Task.Delay(wait, _options.Time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Stops renewing and deletes the mapping at the gateway (one short attempt).</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        if (_current is { } mapping && _client is not null)
        {
            bool removed;
            try
            {
                removed = await _client.DeleteAsync(_port, TimeSpan.FromSeconds(1), CancellationToken.None).ConfigureAwait(false);
            }
            catch (System.Net.Sockets.SocketException)
            {
                removed = false;
            }
            if (removed)
            {
                PortMappingLog.Removed(_logger, mapping.External.ToString(), _gatewayText);
            }
            else
            {
                PortMappingLog.RemoveFailed(_logger, mapping.External.ToString(), _gatewayText);
            }
            _reach.SetMapped(null, mapping.External);
            _current = null;
        }
        _reach.PortMapping = "off";
        _stopping.Dispose();
    }
}
