using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Channel;

/// <summary>
/// Accepts TCP connections and runs responder handshakes under a deadline, with caps on handshakes in progress
/// (in total and per remote address) and an optional address filter checked before any byte is read. A client
/// that misbehaves is closed and logged; everyone else keeps being served. Only authenticated connections come out.
/// </summary>
public sealed class SecureListener : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NodeIdentity _identity;
    private readonly SecureListenerOptions _options;
    private readonly ILogger? _logger;
    private readonly Channel<SecureConnection> _accepted;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<IPAddress, int> _perAddress = [];
    private readonly ConcurrentDictionary<long, Task> _handshakes = new();

    // Handshakes in progress by id (ids grow, so the first is the oldest), guarded by the _perAddress lock.
    private readonly SortedDictionary<long, (long Started, CancellationTokenSource Deadline)> _inProgress = [];
    private readonly Task _acceptLoop;
    private long _nextHandshakeId;
    private int _pending;
    private long _refused;
    private long _failed;
    private long _succeeded;
    private long _evicted;
    private int _disposed;

    private SecureListener(Socket socket, NodeIdentity identity, SecureListenerOptions options)
    {
        _socket = socket;
        _identity = identity;
        _options = options;
        _logger = options.Logger;
        LocalEndPoint = (IPEndPoint)socket.LocalEndPoint!;
        _accepted = System.Threading.Channels.Channel.CreateBounded<SecureConnection>(new BoundedChannelOptions(options.AcceptQueueCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleWriter = false,
        });
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>Binds <paramref name="endPoint"/> (port 0 picks one) and starts accepting.</summary>
    public static SecureListener Start(IPEndPoint endPoint, NodeIdentity identity, SecureListenerOptions options)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (options.MaxPendingHandshakes < 1 || options.MaxPendingPerAddress < 1 || options.AcceptQueueCapacity < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "The listener caps must be positive.");
        }
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(endPoint);
            socket.Listen(options.Backlog);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new SecureMeshException(SecureMeshErrorKind.Network, $"cannot listen on {endPoint}: {e.SocketErrorCode}", e);
        }
        var listener = new SecureListener(socket, identity, options);
        if (options.Logger is { } logger)
        {
            ChannelLog.Listening(logger, listener.LocalEndPoint);
        }
        return listener;
    }

    /// <summary>The bound address.</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>Authenticated connections, in the order their handshakes finished.</summary>
    public ChannelReader<SecureConnection> Connections => _accepted.Reader;

    /// <summary>Waits for the next authenticated connection.</summary>
    public ValueTask<SecureConnection> AcceptAsync(CancellationToken cancellationToken) => _accepted.Reader.ReadAsync(cancellationToken);

    /// <summary>Handshakes in progress now.</summary>
    public int PendingHandshakes => Volatile.Read(ref _pending);

    /// <summary>Connections closed before the handshake (filter or caps).</summary>
    public long RefusedConnections => Interlocked.Read(ref _refused);

    /// <summary>Handshakes that failed or timed out.</summary>
    public long FailedHandshakes => Interlocked.Read(ref _failed);

    /// <summary>Stalled handshakes ended early to make room for a newcomer when every slot was taken.</summary>
    public long EvictedHandshakes => Interlocked.Read(ref _evicted);

    /// <summary>Handshakes that succeeded.</summary>
    public long SucceededHandshakes => Interlocked.Read(ref _succeeded);

    private async Task AcceptLoopAsync()
    {
        var token = _stopping.Token;
        while (!token.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _socket.AcceptAsync(token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (ObjectDisposedException)
            {
                break;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionAborted or SocketError.ConnectionReset
                or SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable)
            {
                // One bad accept (or running out of descriptors under a flood) must not stop the node.
                if (e.SocketErrorCode is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(50), _options.TimeProvider, CancellationToken.None);
                }
                continue;
            }
            catch (Exception e)
            {
                if (_logger is { } logger)
                {
                    ChannelLog.AcceptLoopFailed(logger, LocalEndPoint, e);
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
        // The deadline runs from the accept (before the handshake counts as pending), not from whenever the
        // handshake task gets a thread.
        var deadline = new CancellationTokenSource(_options.HandshakeTimeout, _options.TimeProvider);
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
                    // Every slot is taken, by many addresses. An honest handshake takes milliseconds, so the oldest one
                    // that has run for a while is most likely stalled: end it and let the newcomer in. The slot frees
                    // once that handshake has unwound, so allow a little overshoot, never more.
                    var oldest = _inProgress.FirstOrDefault();
                    if (oldest.Value.Deadline is not null
                        && _options.TimeProvider.GetElapsedTime(oldest.Value.Started) >= _options.EvictStalledAfter
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
                    id = ++_nextHandshakeId;
                    _inProgress[id] = (_options.TimeProvider.GetTimestamp(), deadline);
                }
            }
        }
        if (evict is not null)
        {
            Interlocked.Increment(ref _evicted);
            try
            {
                evict.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // It ended by itself meanwhile.
            }
        }
        if (refusal is not null)
        {
            deadline.Dispose();
            Interlocked.Increment(ref _refused);
            if (_logger is { } logger)
            {
                ChannelLog.ConnectionRefused(logger, _options.FailureLog, address, refusal);
            }
            client.Dispose();
            return;
        }
        // Register before starting, so a handshake that ends at once cannot remove its entry before it exists.
        _handshakes[id] = Task.CompletedTask;
        var task = Task.Run(() => HandshakeAsync(client, address, id, deadline));
        _handshakes.TryUpdate(id, task, Task.CompletedTask);
    }

    private async Task HandshakeAsync(Socket client, IPAddress address, long id, CancellationTokenSource deadline)
    {
        using var ownedDeadline = deadline;
        try
        {
            client.NoDelay = true;
            var remote = client.RemoteEndPoint as IPEndPoint;
            var stream = new NetworkStream(client, ownsSocket: true);
            SecureConnection connection;
            try
            {
                connection = await SecureChannel.HandshakeAsync(stream, false, _identity, LocalStaticKey.For(_identity), null, remote, _options, deadline, _stopping.Token);
            }
            catch (Exception e) when (e is SecureMeshException or OperationCanceledException)
            {
                // Closed and logged (with its reason) by the handshake itself.
                Interlocked.Increment(ref _failed);
                return;
            }
            Interlocked.Increment(ref _succeeded);
            if (!_accepted.Writer.TryWrite(connection))
            {
                if (_logger is { } logger)
                {
                    ChannelLog.HandshakeFailed(logger, _options.FailureLog, remote?.ToString(), "accept queue full or listener stopping");
                }
                await connection.DisposeAsync();
            }
        }
        catch (Exception e)
        {
            Interlocked.Increment(ref _failed);
            client.Dispose();
            if (_logger is { } logger)
            {
                ChannelLog.HandshakeFailed(logger, _options.FailureLog, address.ToString(), "internal error: " + e.GetType().Name);
            }
        }
        finally
        {
            lock (_perAddress)
            {
                _inProgress.Remove(id);
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
            _handshakes.TryRemove(id, out _);
        }
    }

    /// <summary>Stops accepting, aborts handshakes in progress and closes connections nobody accepted yet.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _stopping.CancelAsync();
        _socket.Dispose();
        await _acceptLoop;
        await Task.WhenAll(_handshakes.Values);
        _accepted.Writer.TryComplete();
        while (_accepted.Reader.TryRead(out var connection))
        {
            await connection.DisposeAsync();
        }
        _stopping.Dispose();
    }
}
