/// <reference path="./provided.d.ts" />
/**
 * Starts the smtp-sink the Worker delivers to, on the port vitest.config.ts gave the Worker.
 * Scripted recipients: `reject…@` is refused for good (550); `tempfail…@` is refused once (451)
 * and accepted from the second attempt on.
 */
import { startSink } from '@mailspool/smtp-sink';
import type { TestProject } from 'vitest/node';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const { smtpPort, sinkHttpPort } = project.getProvidedContext();
  const sink = await startSink({
    smtpPort,
    httpPort: sinkHttpPort,
    log: () => {},
    onRcpt: (address, attempt) => {
      if (address.startsWith('reject')) return { code: 550, message: '5.1.1 no such user here' };
      if (address.startsWith('tempfail') && attempt === 1)
        return { code: 451, message: '4.3.0 try again later' };
      return undefined;
    },
  });
  return () => sink.close();
}
