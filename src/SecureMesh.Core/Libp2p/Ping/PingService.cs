using System.Net.Sockets;
using System.Security.Cryptography;

namespace SecureMesh.Core.Libp2p.Ping;

/// <summary>
/// libp2p ping (<c>/ipfs/ping/1.0.0</c>, ping/ping.md) on an already negotiated stream: the dialer sends 32 random bytes,
/// the listener sends them back, as often as the dialer likes on the same stream. The listener paces a dialer that pings
/// faster than <see cref="PingServiceOptions.PingsPerSecond"/> (it stops reading, so the flood backs up on the sender) and
/// closes a stream idle for longer than <see cref="PingServiceOptions.IdleTimeout"/>.
/// </summary>
public sealed class PingService
{
    /// <summary>Ping's protocol ID.</summary>
    public const string ProtocolId = "/ipfs/ping/1.0.0";

    /// <summary>The payload of one ping.</summary>
    public const int PayloadSize = 32;

    private readonly PingServiceOptions _options;

    /// <summary>A ping client and server with the given limits.</summary>
    public PingService(PingServiceOptions? options = null)
    {
        _options = options ?? PingServiceOptions.Default;
        _options.Validate();
    }

    /// <summary>
    /// Sends one ping and waits for its echo; returns the round-trip time. Can be called again on the same stream.
    /// Throws <see cref="SecureMeshException"/>: Protocol for a wrong echo, Network for a closed stream or a timeout.
    /// </summary>
    public async Task<TimeSpan> PingAsync(Stream stream, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var time = _options.TimeProvider;
        var sent = new byte[PayloadSize];
        var received = new byte[PayloadSize];
        RandomNumberGenerator.Fill(sent);
        using var deadline = new CancellationTokenSource(_options.PingTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            var start = time.GetTimestamp();
            await stream.WriteAsync(sent, linked.Token).ConfigureAwait(false);
            await stream.FlushAsync(linked.Token).ConfigureAwait(false);
            if (await stream.ReadAtLeastAsync(received, PayloadSize, throwOnEndOfStream: false, linked.Token).ConfigureAwait(false) < PayloadSize)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Network, "the peer closed the ping stream before answering");
            }
            var rtt = time.GetElapsedTime(start);
            if (!sent.AsSpan().SequenceEqual(received))
            {
                throw new SecureMeshException(SecureMeshErrorKind.Protocol, "the peer answered a ping with other bytes than it was sent");
            }
            return rtt;
        }
        catch (Exception e) when (Translate(e, deadline, "ping timed out") is { } error)
        {
            throw error;
        }
    }

    /// <summary>
    /// Serves pings on <paramref name="stream"/> until the dialer closes it (returns the number answered). The caller closes the
    /// stream afterwards. Throws <see cref="SecureMeshException"/> (Network) when the dialer stays silent past the idle timeout
    /// or the stream breaks, (Protocol) when it ends inside a ping.
    /// </summary>
    public async Task<long> ServeAsync(Stream stream, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var time = _options.TimeProvider;
        var payload = new byte[PayloadSize];
        var tokens = (double)_options.Burst;
        var refilled = time.GetTimestamp();
        long answered = 0;
        while (true)
        {
            using (var idle = new CancellationTokenSource(_options.IdleTimeout, time))
            using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, idle.Token))
            {
                try
                {
                    var read = await stream.ReadAtLeastAsync(payload, PayloadSize, throwOnEndOfStream: false, linked.Token).ConfigureAwait(false);
                    if (read == 0)
                    {
                        return answered;
                    }
                    if (read < PayloadSize)
                    {
                        throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"the ping stream ended inside a ping ({read} of {PayloadSize} bytes)");
                    }
                }
                catch (Exception e) when (Translate(e, idle, "the ping stream was idle too long") is { } error)
                {
                    throw error;
                }
            }

            // A token bucket: Burst pings at once, then PingsPerSecond; beyond that the next echo waits (and so does the reading).
            var now = time.GetTimestamp();
            tokens = Math.Min(_options.Burst, tokens + (time.GetElapsedTime(refilled, now).TotalSeconds * _options.PingsPerSecond));
            refilled = now;
            if (tokens < 1)
            {
                var wait = TimeSpan.FromSeconds((1 - tokens) / _options.PingsPerSecond);
                await Task.Delay(wait, time, cancellationToken).ConfigureAwait(false);
                now = time.GetTimestamp();
                tokens = Math.Min(_options.Burst, tokens + (time.GetElapsedTime(refilled, now).TotalSeconds * _options.PingsPerSecond));
                refilled = now;
            }
            tokens -= 1;
            try
            {
                await stream.WriteAsync(payload, cancellationToken).ConfigureAwait(false);
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (Translate(e, null, "") is { } error)
            {
                throw error;
            }
            answered++;
        }
    }

    private static SecureMeshException? Translate(Exception e, CancellationTokenSource? deadline, string timeout) => e switch
    {
        OperationCanceledException when deadline?.IsCancellationRequested == true => new SecureMeshException(SecureMeshErrorKind.Network, timeout, e),
        IOException or SocketException or ObjectDisposedException => new SecureMeshException(SecureMeshErrorKind.Network, "the ping stream broke", e),
        _ => null,
    };
}

/// <summary>Limits of <see cref="PingService"/>.</summary>
public sealed class PingServiceOptions
{
    /// <summary>How long a ping may wait for its echo.</summary>
    public TimeSpan PingTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>A served stream with no ping for this long is ended (go-libp2p waits 60 s as well).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Sustained pings per second answered on one stream.</summary>
    public double PingsPerSecond { get; init; } = 10;

    /// <summary>Pings answered at once before the pacing starts.</summary>
    public int Burst { get; init; } = 20;

    /// <summary>Source of time (tests inject a fake one).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>The defaults: 10 s per ping, 60 s idle, 10 per second after a burst of 20.</summary>
    public static PingServiceOptions Default { get; } = new();

    internal void Validate()
    {
        if (PingTimeout <= TimeSpan.Zero || IdleTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(PingTimeout), "The timeouts must be positive.");
        }
        if (!(PingsPerSecond > 0) || Burst < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(PingsPerSecond), "The rate and the burst must be positive.");
        }
        ArgumentNullException.ThrowIfNull(TimeProvider);
    }
}
