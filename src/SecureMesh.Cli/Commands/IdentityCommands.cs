using System.CommandLine;
using SecureMesh.Cli.Json;
using SecureMesh.Core;
using SecureMesh.Core.Identity;

namespace SecureMesh.Cli.Commands;

/// <summary><c>init</c>, <c>id</c>, <c>keys export</c>, <c>keys import</c>.</summary>
internal static class IdentityCommands
{
    public static void Add(RootCommand root, CliConsole console)
    {
        var passphraseStdin = new Option<bool>("--passphrase-stdin") { Description = "Read the passphrase from the first line of standard input" };
        var force = new Option<bool>("--force") { Description = "Replace an existing identity" };

        var init = new Command("init", "Create this node's identity (an Ed25519 key pair)") { passphraseStdin, force };
        init.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            IdentityStore.EnsureDataDirectory(ctx.Home);
            if (IdentityStore.Exists(ctx.Home) && !parse.GetValue(force))
            {
                throw new SecureMeshException(SecureMeshErrorKind.Conflict, $"an identity already exists in {ctx.Home}; use --force to replace it");
            }
            var passphrase = ctx.ReadPassphrase(parse.GetValue(passphraseStdin), confirm: true);
            using var identity = NodeIdentity.Generate();
            IdentityStore.Save(ctx.Home, identity, string.IsNullOrEmpty(passphrase) ? null : passphrase, parse.GetValue(force));
            return PrintIdentity(ctx, identity.PeerId, created: true, encrypted: !string.IsNullOrEmpty(passphrase));
        }));
        root.Subcommands.Add(init);

        var id = new Command("id", "Show this node's Peer ID, fingerprint and listen addresses");
        id.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            RequireIdentity(ctx.Home);
            return PrintIdentity(ctx, IdentityStore.LoadPeerId(ctx.Home), created: false, encrypted: IdentityStore.IsEncrypted(ctx.Home));
        }));
        root.Subcommands.Add(id);

        var keys = new Command("keys", "Export or import the identity key");
        var format = new Option<string>("--format") { Description = "openssh or pkcs8", Required = true, HelpName = "openssh|pkcs8" };
        format.AcceptOnlyFromAmong("openssh", "pkcs8");
        var output = new Option<FileInfo?>("--out") { Description = "Write to FILE (created owner-only) instead of standard output", HelpName = "FILE" };
        var export = new Command("export", "Write the identity's private key in OpenSSH or PKCS#8 form") { format, output, passphraseStdin };
        export.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            RequireIdentity(ctx.Home);
            using var identity = IdentityStore.Load(ctx.Home, ctx.PassphraseSource(parse.GetValue(passphraseStdin)));
            var text = parse.GetValue(format) == "openssh" ? KeyFormats.ExportOpenSsh(identity) : KeyFormats.ExportPkcs8Pem(identity);
            var file = parse.GetValue(output);
            if (file is null)
            {
                ctx.Out.Write(text);
                return CliApp.Success;
            }
            WriteNewOwnerOnly(file.FullName, text);
            ctx.Err.WriteLine($"wrote {file.FullName}");
            return CliApp.Success;
        }));
        keys.Subcommands.Add(export);

        var file = new Argument<FileInfo>("FILE") { Description = "An OpenSSH (ssh-keygen -t ed25519) or PKCS#8 PEM Ed25519 private key" };
        var import = new Command("import", "Make an existing Ed25519 private key this node's identity") { file, passphraseStdin, force };
        import.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            var path = parse.GetValue(file)!.FullName;
            byte[] contents;
            try
            {
                contents = File.ReadAllBytes(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"cannot read {path}: {ex.Message}");
            }
            using var identity = KeyFormats.Import(contents);
            IdentityStore.EnsureDataDirectory(ctx.Home);
            if (IdentityStore.Exists(ctx.Home) && !parse.GetValue(force))
            {
                throw new SecureMeshException(SecureMeshErrorKind.Conflict, $"an identity already exists in {ctx.Home}; use --force to replace it");
            }
            var passphrase = ctx.ReadPassphrase(parse.GetValue(passphraseStdin), confirm: true);
            IdentityStore.Save(ctx.Home, identity, string.IsNullOrEmpty(passphrase) ? null : passphrase, parse.GetValue(force));
            return PrintIdentity(ctx, identity.PeerId, created: true, encrypted: !string.IsNullOrEmpty(passphrase));
        }));
        keys.Subcommands.Add(import);
        root.Subcommands.Add(keys);
    }

    internal static void RequireIdentity(string home)
    {
        if (!IdentityStore.Exists(home))
        {
            throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"no identity in {home}; run 'securemesh init' first");
        }
    }

    private static int PrintIdentity(CliContext ctx, PeerId peerId, bool created, bool encrypted)
    {
        var listen = new[] { ListenAddress.Read(ctx.Home) };
        if (ctx.Json)
        {
            var multiaddrs = ListenAddress.Multiaddrs(ctx.Home, peerId);
            ctx.WriteJson(new IdentityJson(peerId.Text, peerId.Fingerprint, listen, multiaddrs, encrypted, ctx.Home), CliJsonContext.Output.IdentityJson);
            return CliApp.Success;
        }
        if (created)
        {
            ctx.Out.WriteLine($"Created a new identity in {ctx.Home}{(encrypted ? " (passphrase-protected)" : string.Empty)}");
        }
        ctx.Out.WriteLine($"Peer ID:     {peerId.Text}");
        ctx.Out.WriteLine($"Fingerprint: {peerId.Fingerprint}");
        ctx.Out.WriteLine($"Listen:      {string.Join(", ", listen)}");
        return CliApp.Success;
    }

    private static void WriteNewOwnerOnly(string path, string text)
    {
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = OwnerOnly.Files;
            }
            using var stream = new FileStream(path, options);
            using var writer = new StreamWriter(stream);
            writer.Write(text);
        }
        catch (IOException) when (File.Exists(path))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Conflict, $"{path} already exists; not overwriting it");
        }
    }
}
