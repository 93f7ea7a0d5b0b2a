using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p;

namespace SecureMesh.Node.Network;

/// <summary>An upgraded inbound connection and the TCP address it came from.</summary>
internal readonly record struct InboundConnection(UpgradedConnection Connection, IPEndPoint? Remote);

/// <summary>Limits of a <see cref="TcpTransport"/>.</summary>
internal sealed class TcpTransportOptions
{
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    public int MaxPendingHandshakes { get; init; } = 256;

    public int MaxPendingPerAddress { get; init; } = 16;

    /// <summary>When every slot is taken, the oldest upgrade running at least this long is ended for a newcomer.</summary>
    public TimeSpan EvictStalledAfter { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Checked before any byte is read; false closes the connection at once.</summary>
    public Func<IPAddress, bool>? AddressFilter { get; init; }

    public int AcceptQueueCapacity { get; init; } = 256;

    public int Backlog { get; init; } = 512;

    public TimeProvider Time { get; init; } = TimeProvider.System;

    public ILogger? Logger { get; init; }

    /// <summary>Bounds the warnings for refused connections (shared with the upgrader's for failed handshakes).</summary>
    public LogThrottle FailureLog { get; init; } = new();
}

/// <summary>
/// The TCP transport: one listening socket whose connections are upgraded (multistream-select, Noise, muxer choice)
/// under a deadline, with caps on upgrades in progress in total and per address and an address filter checked before a
/// byte is read; and the dialler. Only authenticated connections come out.
/// </summary>
internal sealed class TcpTransport : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly Upgrader _upgrader;
    private readonly TcpTransportOptions _options;
    private readonly ILogger? _logger;
    private readonly Channel<InboundConnection> _accepted;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<IPAddress, int> _perAddress = [];
    private readonly Dictionary<long, Task> _upgrades = [];
    private readonly SortedDictionary<long, (long Started, CancellationTokenSource Deadline)> _inProgress = [];
    private readonly Task _acceptLoop;
    private long _nextId;
    private int _pending;
    private long _refused;
    private long _failed;
    private long _succeeded;
    private int _disposed;

    private TcpTransport(Socket socket, Upgrader upgrader, TcpTransportOptions options)
    {
        _socket = socket;
        _upgrader = upgrader;
        _options = options;
        _logger = options.Logger;
        LocalEndPoint = (IPEndPoint)socket.LocalEndPoint!;
        _accepted = Channel.CreateBounded<InboundConnection>(new BoundedChannelOptions(options.AcceptQueueCapacity) { FullMode = BoundedChannelFullMode.Wait });
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>Binds <paramref name="endPoint"/> (port 0 picks one) and starts accepting.</summary>
    public static TcpTransport Listen(IPEndPoint endPoint, Upgrader upgrader, TcpTransportOptions options)
    {
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // Hole punching dials out from the listen port, which takes SO_REUSEPORT on the listener too (a probe first
            // keeps a port that another program holds a clear error).
            socket.Bind(HolePunch.ReusePort.ProbeAndEnable(socket, endPoint));
            socket.Listen(options.Backlog);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new SecureMeshException(SecureMeshErrorKind.Network, $"cannot listen on {endPoint}: {e.SocketErrorCode}", e);
        }
        return new TcpTransport(socket, upgrader, options);
    }

    /// <summary>Dials <paramref name="remote"/> and upgrades the connection; the peer must be <paramref name="expected"/> when given.</summary>
    public static async Task<UpgradedConnection> DialAsync(Upgrader upgrader, IPEndPoint remote, PeerId? expected, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        var socket = new Socket(remote.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(remote, linked.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            socket.Dispose();
            cancellationToken.ThrowIfCancellationRequested();
            var reason = e is OperationCanceledException ? "connect timed out" : "connect failed: " + ((SocketException)e).SocketErrorCode;
            throw new SecureMeshException(SecureMeshErrorKind.Network, $"cannot reach {remote}: {reason}", e);
        }
        var stream = new NetworkStream(socket, ownsSocket: true);
        return await upgrader.UpgradeOutboundAsync(stream, expected, linked.Token, remote.ToString()).ConfigureAwait(false);
    }

    /// <summary>The bound address.</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>Authenticated connections, in the order their upgrades finished.</summary>
    public ChannelReader<InboundConnection> Connections => _accepted.Reader;

    /// <summary>Upgrades in progress now.</summary>
    public int PendingHandshakes => Volatile.Read(ref _pending);

    /// <summary>Connections closed before the upgrade (filter or caps).</summary>
    public long RefusedConnections => Interlocked.Read(ref _refused);

    /// <summary>Upgrades that failed or timed out.</summary>
    public long FailedHandshakes => Interlocked.Read(ref _failed);

    /// <summary>Upgrades that succeeded.</summary>
    public long SucceededHandshakes => Interlocked.Read(ref _succeeded);

    private async Task AcceptLoopAsync()
    {
        var token = _stopping.Token;
        while (!token.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _socket.AcceptAsync(token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                break;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionAborted or SocketError.ConnectionReset
                or SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable)
            {
                // One bad accept (or running out of descriptors under a flood) must not stop the node.
                if (e.SocketErrorCode is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(50), _options.Time, CancellationToken.None).ConfigureAwait(false);
                }
                continue;
            }
            catch (SocketException e)
            {
                if (_logger is { } logger)
                {
                    NetworkLog.AcceptLoopFailed(logger, LocalEndPoint.ToString(), e);
                }
                break;
            }
            Admit(client);
        }
    }

    private void Admit(Socket client)
    {
        var address = (client.RemoteEndPoint as IPEndPoint)?.Address ?? IPAddress.None;
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        string? refusal = null;
        try
        {
            if (_options.AddressFilter is { } filter && !filter(address))
            {
                refusal = "address filtered";
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            refusal = "address filter failed";
        }
        // The deadline runs from the accept, not from whenever the upgrade task gets a thread.
        var deadline = new CancellationTokenSource(_options.HandshakeTimeout, _options.Time);
        CancellationTokenSource? evict = null;
        long id = 0;
        if (refusal is null)
        {
            lock (_perAddress)
            {
                _perAddress.TryGetValue(address, out var count);
                if (count >= _options.MaxPendingPerAddress)
                {
                    refusal = "too many handshakes in progress from this address";
                }
                else if (_pending >= _options.MaxPendingHandshakes)
                {
                    // Every slot is taken: the oldest upgrade that has run a while is most likely stalled; end it for the
                    // newcomer (a little overshoot while it unwinds, never more).
                    var oldest = _inProgress.FirstOrDefault();
                    if (oldest.Value.Deadline is not null
                        && _options.Time.GetElapsedTime(oldest.Value.Started) >= _options.EvictStalledAfter
                        && _pending < _options.MaxPendingHandshakes + Math.Max(1, _options.MaxPendingHandshakes / 8))
                    {
                        _inProgress.Remove(oldest.Key);
                        evict = oldest.Value.Deadline;
                    }
                    else
                    {
                        refusal = "too many handshakes in progress";
                    }
                }
                if (refusal is null)
                {
                    _perAddress[address] = count + 1;
                    _pending++;
                    id = ++_nextId;
                    _inProgress[id] = (_options.Time.GetTimestamp(), deadline);
                    _upgrades[id] = Task.CompletedTask;
                }
            }
        }
        if (evict is not null)
        {
            try
            {
                evict.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }
        if (refusal is not null)
        {
            deadline.Dispose();
            Interlocked.Increment(ref _refused);
            if (_logger is { } logger)
            {
                var admitted = _options.FailureLog.TryWrite(out var suppressed);
                if (suppressed > 0)
                {
                    NetworkLog.Suppressed(logger, suppressed, _options.FailureLog.Burst, _options.FailureLog.Window);
                }
                if (admitted)
                {
                    NetworkLog.ConnectionRefused(logger, address.ToString(), refusal);
                }
            }
            client.Dispose();
            return;
        }
        var task = Task.Run(() => UpgradeAsync(client, address, id, deadline));
        lock (_perAddress)
        {
            if (_upgrades.ContainsKey(id))
            {
                _upgrades[id] = task;
            }
        }
    }

    private async Task UpgradeAsync(Socket client, IPAddress address, long id, CancellationTokenSource deadline)
    {
        using var ownedDeadline = deadline;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, _stopping.Token);
        try
        {
            client.NoDelay = true;
            var remote = client.RemoteEndPoint as IPEndPoint;
            if (remote?.Address.IsIPv4MappedToIPv6 == true)
            {
                remote = new IPEndPoint(remote.Address.MapToIPv4(), remote.Port);
            }
            UpgradedConnection connection;
            try
            {
                connection = await _upgrader.UpgradeInboundAsync(new NetworkStream(client, ownsSocket: true), linked.Token, remote?.ToString()).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SecureMeshException or OperationCanceledException)
            {
                // Closed and logged by the upgrader.
                Interlocked.Increment(ref _failed);
                return;
            }
            Interlocked.Increment(ref _succeeded);
            if (!_accepted.Writer.TryWrite(new InboundConnection(connection, remote)))
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            Interlocked.Increment(ref _failed);
            client.Dispose();
        }
        finally
        {
            lock (_perAddress)
            {
                _inProgress.Remove(id);
                _upgrades.Remove(id);
                _pending--;
                if (_perAddress.TryGetValue(address, out var count) && count > 1)
                {
                    _perAddress[address] = count - 1;
                }
                else
                {
                    _perAddress.Remove(address);
                }
            }
        }
    }

    /// <summary>Stops accepting, aborts upgrades in progress and closes connections nobody took yet.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        _socket.Dispose();
        await _acceptLoop.ConfigureAwait(false);
        Task[] running;
        lock (_perAddress)
        {
            running = [.. _upgrades.Values];
        }
        await Task.WhenAll(running).ConfigureAwait(false);
        _accepted.Writer.TryComplete();
        while (_accepted.Reader.TryRead(out var inbound))
        {
            await inbound.Connection.DisposeAsync().ConfigureAwait(false);
        }
        _stopping.Dispose();
    }
}
