using System.Net.Sockets;
using System.Text;
using SecureMesh.Core.Wire;

namespace SecureMesh.Core.Libp2p.Multistream;

/// <summary>
/// multistream-select 1.0 (multiformats/multistream-select): both sides send <c>/multistream/1.0.0</c>, the dialer
/// proposes protocols one at a time, the listener echoes the one it takes or answers <c>na</c>. Every message is a
/// varint length, then UTF-8 text ending in <c>'\n'</c>. Messages longer than <see cref="MaxMessageLength"/>, more than
/// <see cref="MultistreamOptions.MaxProposals"/> proposals, a missed deadline or malformed text end the negotiation with
/// a <see cref="SecureMeshException"/>; neither side reads a byte past the negotiation, so the protocol's own bytes
/// follow on the same stream. On failure the stream is left to the caller to close.
/// </summary>
public static class MultistreamSelect
{
    /// <summary>The protocol's own header.</summary>
    public const string ProtocolId = "/multistream/1.0.0";

    /// <summary>The answer to a protocol the listener does not support.</summary>
    public const string NotAvailable = "na";

    /// <summary>A listener's list request.</summary>
    public const string List = "ls";

    /// <summary>Largest message, newline included (go-libp2p and js-libp2p use the same bound).</summary>
    public const int MaxMessageLength = 1024;

    /// <summary>Longest protocol ID, in UTF-8 bytes.</summary>
    public const int MaxProtocolIdLength = MaxMessageLength - 1;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>As dialer: proposes <paramref name="protocols"/> in order and returns the first the listener accepts.</summary>
    public static Task<string> SelectAsync(Stream stream, IReadOnlyList<string> protocols, CancellationToken cancellationToken) =>
        SelectAsync(stream, protocols, null, cancellationToken);

    /// <summary>
    /// As dialer: proposes <paramref name="protocols"/> in order (the header and the first proposal in one write) and
    /// returns the first the listener accepts. Throws <see cref="SecureMeshException"/>: NotFound when it accepts none,
    /// Protocol when it breaks the protocol, Network on a lost stream or a missed deadline.
    /// </summary>
    public static Task<string> SelectAsync(Stream stream, IReadOnlyList<string> protocols, MultistreamOptions? options, CancellationToken cancellationToken) =>
        SelectCoreAsync(stream, protocols, options, endIsNull: false, cancellationToken)!;

    /// <summary>
    /// Like <see cref="SelectAsync(Stream, IReadOnlyList{string}, MultistreamOptions?, CancellationToken)"/>, but null,
    /// not an exception, when the stream ends cleanly (as a read, not a failure) before an answer: for a caller to whom a
    /// peer that has left is no error (the node's identify of a peer that closed the connection at once). Every other
    /// failure throws as there.
    /// </summary>
    internal static Task<string?> SelectOrEndAsync(Stream stream, IReadOnlyList<string> protocols, MultistreamOptions? options, CancellationToken cancellationToken) =>
        SelectCoreAsync(stream, protocols, options, endIsNull: true, cancellationToken);

    private static async Task<string?> SelectCoreAsync(Stream stream, IReadOnlyList<string> protocols, MultistreamOptions? options, bool endIsNull, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(protocols);
        if (protocols.Count == 0)
        {
            throw new ArgumentException("At least one protocol must be proposed.", nameof(protocols));
        }
        var encoded = new byte[protocols.Count][];
        for (var i = 0; i < protocols.Count; i++)
        {
            encoded[i] = EncodeLine(protocols[i]);
        }
        options ??= MultistreamOptions.Default;
        options.Validate();
        using var deadline = new CancellationTokenSource(options.Timeout, options.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        var ct = linked.Token;
        try
        {
            for (var i = 0; i < protocols.Count; i++)
            {
                if (i == 0)
                {
                    await LengthPrefixed.WriteAsync(stream, [HeaderLine, encoded[0]], ct).ConfigureAwait(false);
                    var header = await ReadLineOrEndAsync(stream, endIsNull, ct).ConfigureAwait(false);
                    if (header is null)
                    {
                        return null;
                    }
                    if (header != ProtocolId)
                    {
                        throw new SecureMeshException(SecureMeshErrorKind.Protocol, "the peer does not speak multistream-select 1.0: " + Shown(header));
                    }
                }
                else
                {
                    await LengthPrefixed.WriteAsync(stream, encoded[i], ct).ConfigureAwait(false);
                }
                var answer = await ReadLineOrEndAsync(stream, endIsNull, ct).ConfigureAwait(false);
                if (answer is null)
                {
                    return null;
                }
                if (answer == protocols[i])
                {
                    return answer;
                }
                if (answer != NotAvailable)
                {
                    throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"the peer answered {Shown(answer)} to the proposal {Shown(protocols[i])}");
                }
            }
        }
        catch (Exception e) when (Translate(e, deadline, cancellationToken) is { } error)
        {
            throw error;
        }
        throw new SecureMeshException(SecureMeshErrorKind.NotFound, "the peer supports none of " + string.Join(", ", protocols));
    }

    /// <summary>
    /// The dialer's half of a lazy (optimistic) selection of one protocol, as rust-libp2p's <c>V1Lazy</c> and js-libp2p's
    /// optimistic select do: the header and the proposal are written now, and the dialer goes on with the protocol's first
    /// bytes without waiting for the answer (a stream that holds writes sends them all in one go). The answer must then
    /// be checked with <see cref="ReadLazyAnswerAsync"/> before the dialer reads anything of the protocol. Only for a
    /// protocol whose first message tells the dialer nothing secret: a listener that refuses it has seen it.
    /// </summary>
    internal static ValueTask WriteLazyProposalAsync(Stream stream, string protocol, CancellationToken cancellationToken) =>
        LengthPrefixed.WriteAsync(stream, [HeaderLine, EncodeLine(protocol)], cancellationToken);

    /// <summary>
    /// The listener's answer to a lazy proposal (<see cref="WriteLazyProposalAsync"/>): its header, then the protocol
    /// echoed. Throws <see cref="SecureMeshException"/>: NotFound for <c>na</c>, Protocol for anything else; a lost stream
    /// or the caller's deadline (<paramref name="cancellationToken"/> carries it: this runs inside the caller's
    /// handshake) surface as they are, for the caller to map.
    /// </summary>
    internal static async Task ReadLazyAnswerAsync(Stream stream, string protocol, CancellationToken cancellationToken)
    {
        var header = await ReadLineAsync(stream, cancellationToken).ConfigureAwait(false);
        if (header != ProtocolId)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "the peer does not speak multistream-select 1.0: " + Shown(header));
        }
        var answer = await ReadLineAsync(stream, cancellationToken).ConfigureAwait(false);
        if (answer == NotAvailable)
        {
            throw new SecureMeshException(SecureMeshErrorKind.NotFound, "the peer supports none of " + protocol);
        }
        if (answer != protocol)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"the peer answered {Shown(answer)} to the proposal {Shown(protocol)}");
        }
    }

    /// <summary>As listener: takes the first proposal in <paramref name="supported"/>, answers <c>ls</c> with it.</summary>
    public static Task<string> NegotiateAsync(Stream stream, IReadOnlyCollection<string> supported, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(supported);
        return NegotiateAsync(stream, supported.Contains, supported, null, cancellationToken);
    }

    /// <summary>
    /// As listener: reads the dialer's header and proposals, answers <c>na</c> to each one <paramref name="isSupported"/>
    /// refuses and echoes (and returns) the first it accepts. <c>ls</c> is answered with <paramref name="advertised"/>,
    /// or <c>na</c> when that is null. Throws <see cref="SecureMeshException"/>: Protocol when the dialer breaks the
    /// protocol or proposes too much, Network on a lost stream or a missed deadline.
    /// </summary>
    public static async Task<string> NegotiateAsync(Stream stream, Func<string, bool> isSupported, IEnumerable<string>? advertised,
        MultistreamOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(isSupported);
        options ??= MultistreamOptions.Default;
        options.Validate();
        using var deadline = new CancellationTokenSource(options.Timeout, options.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        var ct = linked.Token;
        try
        {
            var header = await ReadLineAsync(stream, ct).ConfigureAwait(false);
            if (header != ProtocolId)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Protocol, "the dialer does not speak multistream-select 1.0: " + Shown(header));
            }
            // A dialer that sent its first proposal with its header (as libp2p dialers do) gets our header and the answer
            // in one write: one send (for a yamux stream: one frame, one Noise message) instead of two. A dialer that
            // waits for our header before proposing gets it at once.
            var headerSent = false;
            if (!ProposalWaiting(stream))
            {
                await LengthPrefixed.WriteAsync(stream, HeaderLine, ct).ConfigureAwait(false);
                headerSent = true;
            }
            for (var proposals = 0; proposals < options.MaxProposals; proposals++)
            {
                var proposal = await ReadLineAsync(stream, ct).ConfigureAwait(false);
                var accepted = proposal.Length > 0 && proposal != NotAvailable && proposal != List && isSupported(proposal);
                var answer = accepted ? EncodeLine(proposal) : proposal switch
                {
                    List when advertised is not null => EncodeListResponse(advertised),
                    ProtocolId => HeaderLine,
                    _ => NotAvailableLine,
                };
                await LengthPrefixed.WriteAsync(stream, headerSent ? [answer] : [HeaderLine, answer], ct).ConfigureAwait(false);
                headerSent = true;
                if (accepted)
                {
                    return proposal;
                }
            }
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"the dialer made more than {options.MaxProposals} proposals");
        }
        catch (Exception e) when (Translate(e, deadline, cancellationToken) is { } error)
        {
            throw error;
        }
    }

    /// <summary>True when the dialer's next message has already arrived (it can be read without waiting for our header).</summary>
    private static bool ProposalWaiting(Stream stream) => stream switch
    {
        NetworkStream network => network.DataAvailable,
        UpgradeStream upgrade => upgrade.PeerBytesWaiting,
        Yamux.YamuxStream yamux => yamux.BufferedBytes > 0,
        _ => false,
    };

    /// <summary>
    /// The answer to <c>ls</c>: one message holding each protocol as its own length-prefixed line, then a final
    /// <c>'\n'</c> (as js-libp2p and rust-libp2p write it). Protocols that would take it past
    /// <see cref="MaxMessageLength"/> are left out.
    /// </summary>
    internal static byte[] EncodeListResponse(IEnumerable<string> protocols)
    {
        using var body = new MemoryStream();
        Span<byte> prefix = stackalloc byte[Varint.MaxLength64];
        foreach (var protocol in protocols)
        {
            if (protocol.Length == 0 || protocol.Contains('\n', StringComparison.Ordinal))
            {
                continue;
            }
            var line = Encoding.UTF8.GetBytes(protocol + "\n");
            var n = Varint.Write(prefix, (ulong)line.Length);
            if (body.Length + n + line.Length + 1 > MaxMessageLength)
            {
                break;
            }
            body.Write(prefix[..n]);
            body.Write(line);
        }
        body.WriteByte((byte)'\n');
        return body.ToArray();
    }

    /// <summary>Reads one message and returns its text without the final newline.</summary>
    internal static ValueTask<string> ReadLineAsync(Stream stream, CancellationToken cancellationToken) =>
        ReadLineOrEndAsync(stream, endIsNull: false, cancellationToken)!;

    /// <summary>Reads one message; at a clean end of the stream before it, null when <paramref name="endIsNull"/>, else an exception.</summary>
    private static async ValueTask<string?> ReadLineOrEndAsync(Stream stream, bool endIsNull, CancellationToken cancellationToken)
    {
        var message = await LengthPrefixed.ReadAsync(stream, MaxMessageLength, "multistream-select message", cancellationToken).ConfigureAwait(false);
        if (message is null)
        {
            return endIsNull ? null : throw new SecureMeshException(SecureMeshErrorKind.Network, "the peer closed the stream during protocol negotiation");
        }
        return DecodeLine(message);
    }

    /// <summary>The text of one message: strict UTF-8, exactly one newline, at the end.</summary>
    internal static string DecodeLine(ReadOnlySpan<byte> message)
    {
        if (message.IsEmpty || message[^1] != (byte)'\n')
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "a multistream-select message does not end in a newline");
        }
        var text = message[..^1];
        if (text.Contains((byte)'\n'))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "a multistream-select message holds more than one line");
        }
        try
        {
            return StrictUtf8.GetString(text);
        }
        catch (DecoderFallbackException)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "a multistream-select message is not valid UTF-8");
        }
    }

    private static byte[] HeaderLine { get; } = Encoding.UTF8.GetBytes(ProtocolId + "\n");

    private static byte[] NotAvailableLine { get; } = Encoding.UTF8.GetBytes(NotAvailable + "\n");

    private static byte[] EncodeLine(string protocol)
    {
        ArgumentNullException.ThrowIfNull(protocol);
        if (protocol.Length == 0 || protocol.Contains('\n', StringComparison.Ordinal) || protocol is NotAvailable or List or ProtocolId)
        {
            throw new ArgumentException($"'{protocol}' cannot be a protocol ID.", nameof(protocol));
        }
        var line = Encoding.UTF8.GetBytes(protocol + "\n");
        if (line.Length > MaxMessageLength)
        {
            throw new ArgumentException($"A protocol ID is at most {MaxProtocolIdLength} bytes.", nameof(protocol));
        }
        return line;
    }

    /// <summary>A peer's text for an error message: bounded, control characters escaped.</summary>
    private static string Shown(string text)
    {
        var builder = new StringBuilder("'");
        foreach (var c in text.Length > 64 ? text[..64] : text)
        {
            builder.Append(char.IsControl(c) || char.IsSurrogate(c) || char.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.Format
                ? $"\\u{(int)c:x4}"
                : c);
        }
        return builder.Append(text.Length > 64 ? "'…" : "'").ToString();
    }

    /// <summary>Any failure as a <see cref="SecureMeshException"/>; null for the caller's own cancellation (rethrown as is).</summary>
    private static SecureMeshException? Translate(Exception e, CancellationTokenSource deadline, CancellationToken cancellationToken) => e switch
    {
        SecureMeshException sme => sme,
        OperationCanceledException when cancellationToken.IsCancellationRequested => null,
        OperationCanceledException when deadline.IsCancellationRequested => new SecureMeshException(SecureMeshErrorKind.Network, "protocol negotiation timed out", e),
        IOException or SocketException or ObjectDisposedException => new SecureMeshException(SecureMeshErrorKind.Network, "the stream broke during protocol negotiation", e),
        _ => null,
    };
}
